"""The Marconi HTTP API: ``app`` routes and checks, ``site`` serves, ``v1`` answers."""
