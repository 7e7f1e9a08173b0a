"""os_support: is this operating-system release still getting security updates, and for how long?

Judged against `eol.json` (beside this file), a table shipped with the agent in which every date names its
source. An OS the table does not know gives null facts (and so an error), never a guess.
"""
