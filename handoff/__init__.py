"""The human hand-off: the ticket queue and the agents' side in a Telegram staff group."""
