"""The learner-facing web pages of the course server."""
