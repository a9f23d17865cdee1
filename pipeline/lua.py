"""Lua shared by the Redis scripts: the one compare-and-delete and the one compare-and-extend.

A key that holds an owner's token (a per-AVID claim, a download-mutex slot) may be deleted
only by that owner: a late release must never free what a newer owner has taken since.
Every script that releases such a key calls ``release_if_held`` from here.
"""

from __future__ import annotations

# Defines the Lua function; a script puts this text first and then calls it.
RELEASE_IF_HELD_FN = """
local function release_if_held(key, token)
  if redis.call('GET', key) == token then return redis.call('DEL', key) end
  return 0
end
"""

# The whole script: KEYS[1] the key, ARGV[1] the owner's token; returns 1 if deleted, else 0.
RELEASE_IF_HELD = RELEASE_IF_HELD_FN + "return release_if_held(KEYS[1], ARGV[1])\n"

# Extend a held key: KEYS[1] the key, ARGV[1] the owner's token, ARGV[2] the new TTL in ms;
# returns 1 if extended, 0 when the key expired or another owner holds it (the download mutex's
# slots and the gateway's leases renew with it).
RENEW_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
