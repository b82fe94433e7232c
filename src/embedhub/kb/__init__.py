"""The knowledge base: loaders, structure-aware chunking, the embedded store, hybrid search."""
