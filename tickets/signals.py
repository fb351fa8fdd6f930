"""Signals tickets/ sends, so that other apps react to ticket events without tickets/ importing them."""

from django.dispatch import Signal

# Sent by `ticket_create`, once per new ticket, inside the transaction that wrote it, with
# `ticket=<Ticket>`. Not post_save: fixtures and data copies save Ticket rows too, and they are
# not new tickets anyone opened. calls/ connects the ticket.created webhook to it.
ticket_created = Signal()
