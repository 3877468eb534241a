"""perdure: durable, event-sourced actors for asyncio."""
