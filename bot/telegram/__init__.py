"""The Telegram channel: python-telegram-bot front end for the conversation engine."""

import os

# python-telegram-bot 22 is moving time spans (a 429's retry_after among them) from int to
# datetime.timedelta and warns each time one is read the old way; the bot reads them
# with bot.telegram.request.retry_seconds, which takes either, so it opts in to the new
# type. (Under the tests' filterwarnings=error the warning was an exception in the
# sender's 429 path.)
os.environ.setdefault("PTB_TIMEDELTA", "1")
