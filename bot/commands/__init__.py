"""Sub-commands of ``find-bot``; each module exposes ``register(subparsers)``.

Heavy imports (TensorFlow, OpenCV, the YouTube client) happen inside the
handlers, never at module level, so ``find-bot --help`` stays instant.
"""

#: Command modules in the order their sub-commands appear in ``--help``.
#: A module listed here that is not importable yet is skipped, so each area
#: can land on its own.
COMMAND_MODULES = (
    "bot.commands.db",
    "bot.commands.scan",
    "bot.commands.model",
    "bot.commands.train",
    "bot.commands.poll",
    "bot.commands.submit",
    "bot.commands.run",
    "bot.commands.status",
    "bot.commands.requeue",
    "bot.commands.review",
    "bot.commands.reviewers",
    "bot.commands.bank",
    "bot.commands.web",
    "bot.commands.websub",
    "bot.commands.demo",
)
