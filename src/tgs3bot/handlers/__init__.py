"""Handlers: plain ``async def handler(ctx, event)`` functions, one module per conversation.

``router.build_router`` decides which one gets an event.
"""
