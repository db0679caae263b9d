"""The MongoDB driver (txmongo): for deployments that outgrow one machine.

``driver.MongoDriver`` is the entry point; ``schema`` describes the
documents and indexes, ``batches`` how a posted batch becomes visible.
"""
