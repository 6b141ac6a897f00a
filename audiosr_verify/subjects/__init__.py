"""Built-in subjects (implementations under test) and the loader for users' subjects."""
