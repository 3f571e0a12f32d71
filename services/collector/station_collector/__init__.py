"""The data collector of one charger: the bridge between its piles' radios and the station.

It pairs a plugged gun with a card swipe, has the card verified, opens the session with
billing before any energy flows, commands the pile, and on the second swipe stops the pile,
checks the session out and shows the receipt on the pile display.
"""
