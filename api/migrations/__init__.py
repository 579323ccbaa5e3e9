"""Alembic migrations of the API's database."""
from pathlib import Path

from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    # ConfigParser interpolation would read "%" in passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
