"""Reading the images a scorer is given: what is missing, unreadable, or not what the protocol expects."""
