"""closedloop's benchmarks: the standard problems, the planner harness and its peers, campaigns, and the scripts
that measure speed and memory against a baseline run in the same invocation."""
