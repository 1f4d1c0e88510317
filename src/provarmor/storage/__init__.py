"""Storage adapters: the SQL implementations of the store protocols declared below them
(``provarmor.graph.store.GraphStore`` ...). SQLite is the embedded default."""
