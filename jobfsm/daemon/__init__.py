"""The daemon: the scheduler core, its policies and timetable, and the process around them."""
