"""The MCP server (`embedhub mcp`): the knowledge base as tools for agents, over stdio or streamable
HTTP, on the official `mcp` SDK."""
