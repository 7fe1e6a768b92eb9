"""Services: every write goes through a function here, named `<entity>_<verb>`, keyword-only."""
