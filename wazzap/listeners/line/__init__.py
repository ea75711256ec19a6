"""
The line listener, spoken by nc, telnet and the wazzap client: its grammar
(C{/cmd}, C{//}, C{@nick}), the ANSI renderer, telnet, and the nickname and
password dialog.
"""
