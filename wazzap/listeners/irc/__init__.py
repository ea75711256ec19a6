"""
The IRC listener, for irssi, WeeChat, HexChat and the like: the wire format
(L{wire}), the renderer of core events as IRC lines (L{render}), and the
connection that registers, joins channels and turns IRC commands into the
chat's commands (L{connection}).
"""
