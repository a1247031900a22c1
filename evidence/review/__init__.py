"""Review stage: tags (CSI L241-2), hierarchical review (CSI R241-12), comments and bookmarks."""
