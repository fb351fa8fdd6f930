"""The admin's "Call now" form: which agent calls, and the context it calls with."""

from django import forms
from django.db.models import Exists, OuterRef

from agents.models import AgentConfig
from telephony.models import Route
from telephony.outbound import CHANNEL_ROUTES, OutboundError, outbound_variables_clean


def agents_with_a_line():
    lines = Route.objects.filter(agent=OuterRef("pk"), active=True, kind__in=list(CHANNEL_ROUTES.values()))
    return AgentConfig.objects.filter(active=True).filter(Exists(lines)).order_by("name")


class CallNowForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=AgentConfig.objects.none(), help_text="Agents with an active phone line.")
    variables = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="One name=value a line, e.g. load_number=L-1042; the flow reads {context.load_number}. "
                  "The customer's first_name is added unless you set it.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = agents_with_a_line()

    def clean_variables(self) -> dict[str, str]:
        pairs = {}
        for n, line in enumerate(self.cleaned_data["variables"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"Line {n}: name=value.")
            pairs[name.strip()] = value.strip()
        try:
            return outbound_variables_clean(pairs)
        except OutboundError as error:
            raise forms.ValidationError(error.message_dict["variables"]) from None
