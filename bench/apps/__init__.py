"""Small programs the serving benchmark runs in other processes and other venvs.

They import nothing from `bench` (the peers' venvs do not have it) and take their inputs
from the command line or the environment.
"""
