"""What wazzap keeps in its database, apart from the chat in memory."""
