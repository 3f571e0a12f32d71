"""The console: the station's face for people (display board, monitoring, operator actions,
card kiosk). It keeps a read model built from the bus and acts only through the owners'
contracts: the bus where a channel exists, otherwise the owners' REST APIs."""
