"""Running kissha: one failover run, the daemon, and the state kept between runs."""
