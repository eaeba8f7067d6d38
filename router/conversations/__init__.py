"""Conversation state the router keeps where the upstream keeps none.

A response made by a stateless deployment (one reached through a codec:
Anthropic, Gemini, Bedrock, Chat Completions servers...) is kept as a
:class:`~router.conversations.links.Link`: the input items of its turn, the
response itself, and the id of the response it continued. A follow-up
(``previous_response_id``, or a ``conversation`` the router keeps) is expanded
into the whole history before translation (:mod:`router.conversations.keeper`).
With ``conversation_failover`` the router keeps native conversations too, and
continues one on another deployment when its owner cannot serve.

Stores (:mod:`router.conversations.store`): bounded memory, or Redis where a
whole chain is read in one round trip. By-id calls on kept responses are
answered from the store (:mod:`router.conversations.answers`).
"""

from router.conversations.keeper import Continuation, Keeper
from router.conversations.links import Link
from router.conversations.store import ConversationStore, MemoryConversations

__all__ = ["Continuation", "ConversationStore", "Keeper", "Link", "MemoryConversations"]
