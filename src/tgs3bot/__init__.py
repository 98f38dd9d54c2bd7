"""tgs3bot: a Telegram bot that saves the documents people send it into an S3 bucket."""

__version__ = "0.1.0"
