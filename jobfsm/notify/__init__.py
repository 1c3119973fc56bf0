"""Notifications: a listener of the lifecycle's events decides what to tell
(:mod:`.streaks`, :mod:`.misses`), and a dispatcher on its own thread delivers it by webhook
(:mod:`.webhook`) or e-mail (:mod:`.email`), so a dead endpoint never delays a fire."""
