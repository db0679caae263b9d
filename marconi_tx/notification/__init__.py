"""API v2 subscriptions: what a subscription may hold
(``subscription_input``), how failed deliveries are retried
(``retry_policy``) and the service delivering messages to subscribers
(``notifier``)."""
