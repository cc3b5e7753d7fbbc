from tests.telegram.conftest import bot, customers, double  # noqa: F401 - shared fixtures
