"""rasa-sdk actions: the business steps of a complaint (validate, record, summarise,
hand off, schedule). Run them remotely with ``python -m rasa_sdk --actions actions``."""
