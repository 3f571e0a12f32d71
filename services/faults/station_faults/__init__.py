"""The faults service: fault bulletins for the people who keep the station running.

Collectors report conditions (a silent pile, a pile's own error code); this service expands
each into a bulletin from the fault catalogue (what is wrong, likely causes, remedies in
order), publishes it retained for display boards, keeps the history, answers the
collectors' breath frames and notices the collectors that stop breathing.
"""
