"""
What wazzap keeps in its database beyond the store's own tables: the
history of rooms (L{wazzap.persist.history}), written in batches off the
reactor, and private messages waiting for people who are offline
(L{wazzap.persist.memos}).
"""
