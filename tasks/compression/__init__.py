"""Compression (issue 20): a smaller, faster variant of @champion, registered as @compact only when
it is non-inferior on the test rows."""
