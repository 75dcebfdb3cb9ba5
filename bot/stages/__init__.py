"""The pipeline's stages, in the order a video meets them.

discover (:mod:`bot.stages.discover`) finds new uploads and stores them as ``new`` rows;
download (:mod:`bot.stages.download`) fetches each with yt-dlp; analyse
(:mod:`bot.stages.analyse`) scores it, records the evidence and flags it for review;
retention (:mod:`bot.stages.retention`) deletes media and rows that are no longer needed.
Each stage reads its input from the database and writes its result back through
:func:`bot.queue.run_one`; the reviewer side that follows a flag is :mod:`bot.review`.
"""
