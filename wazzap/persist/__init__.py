"""
What wazzap keeps on disk beyond the store's own tables: the history of
rooms (L{wazzap.persist.history}), written in batches off the reactor.
"""
