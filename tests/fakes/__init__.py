"""Local fakes of YouTube (Data API v3 and a media server) for tests and benchmarks."""
