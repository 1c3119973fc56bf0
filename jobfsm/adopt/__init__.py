"""Adoption: what brings a team from cron to jobfsm (crontab import, ``jobfsm init``, the
first run's summary). See the README's "Coming from cron"."""
