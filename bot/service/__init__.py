"""Running FIND as a service: the daemon and what keeps it honest with its operator.

:mod:`.daemon` (``find-bot run``) runs the scheduler and the stage workers;
:mod:`.leader` makes one scheduler active among several; :mod:`.reload` checks a
settings file before SIGHUP applies it; :mod:`.systemd` speaks sd_notify;
:mod:`.status` (``find-bot status``) and :mod:`.metrics` (Prometheus) report on
the queue, the quota and the workers.
"""
