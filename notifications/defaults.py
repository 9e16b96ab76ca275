"""Built-in campaign templates: used when an environment has not written its own."""

from notifications.models import Category

_SIGN = "\n\n— {{ institution.name }}"

DEFAULT_TEMPLATES: dict[str, dict] = {
    "welcome_1": {
        "name": "Welcome series · day 1",
        "category": Category.ACCOUNT,
        "subject": "Welcome to your home dashboard, {{ member.first_name|default:'there' }}",
        "text_body": "Hello {{ member.first_name }},\n\nYour home dashboard is ready: "
        "see what your home is worth and how much equity you have.\n\n{{ links.dashboard }}"
        + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>Your home dashboard is ready: "
        "see what your home is worth and how much equity you have.</p>"
        '<p><a class="button" href="{{ links.dashboard }}">Open my dashboard</a></p>',
        "push_title": "Welcome to {{ institution.name }}",
        "push_body": "Your home dashboard is ready.",
        "push_link": "/",
    },
    "welcome_3": {
        "name": "Welcome series · day 3",
        "category": Category.ACCOUNT,
        "subject": "How your home's value is estimated",
        "text_body": "Hello {{ member.first_name }},\n\nWe estimate your home's value from "
        "recent sales nearby and show the range and our confidence.\n\n{{ links.dashboard }}"
        + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>We estimate your home's value "
        "from recent sales nearby and show the range and our confidence.</p>"
        '<p><a class="button" href="{{ links.dashboard }}">See my estimate</a></p>',
        "push_title": "How we estimate your home's value",
        "push_body": "Recent sales nearby, a range, and our confidence.",
        "push_link": "/",
    },
    "welcome_5": {
        "name": "Welcome series · day 5",
        "category": Category.ACCOUNT,
        "subject": "Choose what we send you",
        "text_body": "Hello {{ member.first_name }},\n\nChoose which updates you get, how often, "
        "and when we stay quiet:\n\n{{ links.preferences }}" + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>Choose which updates you get, how "
        "often, and when we stay quiet.</p>"
        '<p><a class="button" href="{{ links.preferences }}">My preferences</a></p>',
        "push_title": "Choose what we send you",
        "push_body": "Updates, frequency and quiet hours.",
        "push_link": "/notifications/preferences/",
    },
    "home_value": {
        "name": "Monthly home value update",
        "category": Category.HOME_VALUE,
        "subject": "Your home is worth about {{ home.value_display }}",
        "text_body": "Hello {{ member.first_name }},\n\n{{ home.address }} is worth about "
        "{{ home.value_display }}{% if home.change_display %} ({{ home.change_display }} since "
        "last time){% endif %}.\n{% if home.equity_display %}Your equity: "
        "{{ home.equity_display }}.\n{% endif %}{% if home.top_offer_title %}For you: "
        "{{ home.top_offer_title }} — {{ home.top_offer_url }}\n{% endif %}\n"
        "{{ links.dashboard }}" + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p><strong>{{ home.address }}</strong> "
        "is worth about <strong>{{ home.value_display }}</strong>{% if home.change_display %} "
        "({{ home.change_display }} since last time){% endif %}.</p>"
        "{% if home.equity_display %}<p>Your equity: {{ home.equity_display }}.</p>{% endif %}"
        '{% if home.top_offer_title %}<p>For you: <a href="{{ home.top_offer_url }}">'
        "{{ home.top_offer_title }}</a></p>{% endif %}"
        '<p><a class="button" href="{{ links.dashboard }}">See my home</a></p>',
        "push_title": "Your home: about {{ home.value_display }}",
        "push_body": "{% if home.change_display %}{{ home.change_display }} since last time. "
        "{% endif %}Tap to see your equity.",
        "push_link": "/",
    },
    "refinance_alert": {
        "name": "Refinance alert",
        "category": Category.OFFERS,
        "subject": "Rates are down to {{ market_rate }}%: you pay {{ home.member_rate }}%",
        "text_body": "Hello {{ member.first_name }},\n\nToday's rate is {{ market_rate }}%, "
        "below the {{ home.member_rate }}% on your mortgage. A refinance could lower your "
        "payment.\n\n{{ links.offer }}" + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>Today's rate is "
        "<strong>{{ market_rate }}%</strong>, below the {{ home.member_rate }}% on your "
        "mortgage. A refinance could lower your payment.</p>"
        '<p><a class="button" href="{{ links.offer }}">See what I could save</a></p>',
        "push_title": "Rates are down to {{ market_rate }}%",
        "push_body": "You pay {{ home.member_rate }}%. See what a refinance could save.",
        "push_link": "/",
    },
    "offer_summary": {
        "name": "Monthly offer summary",
        "category": Category.OFFERS,
        "subject": "Your offer this month: {{ home.top_offer_title }}",
        "text_body": "Hello {{ member.first_name }},\n\nWith {{ home.equity_display }} of equity, "
        "here is your best offer this month: {{ home.top_offer_title }}"
        "{% if home.borrowing_power_display %} (up to {{ home.borrowing_power_display }})"
        "{% endif %}.\n\n{{ home.top_offer_url }}" + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>With {{ home.equity_display }} of "
        "equity, here is your best offer this month:</p><p><strong>"
        "{{ home.top_offer_title }}</strong>{% if home.borrowing_power_display %} (up to "
        "{{ home.borrowing_power_display }}){% endif %}</p>"
        '<p><a class="button" href="{{ home.top_offer_url }}">See the offer</a></p>',
        "push_title": "Your offer: {{ home.top_offer_title }}",
        "push_body": "Based on your equity this month.",
        "push_link": "/",
    },
    "appointment_confirmation": {
        "name": "Appointment confirmation",
        "category": Category.APPOINTMENTS,
        "subject": "Confirmed: {{ appointment.title|default:'your appointment' }}, "
        "{{ appointment.when }}",
        "text_body": "Hello {{ member.first_name }},\n\nYour appointment"
        "{% if appointment.officer %} with {{ appointment.officer }}{% endif %} is confirmed "
        "for {{ appointment.when }}. The invitation is attached." + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>Your appointment"
        "{% if appointment.officer %} with {{ appointment.officer }}{% endif %} is confirmed "
        "for <strong>{{ appointment.when }}</strong>. The invitation is attached.</p>",
        "push_title": "Appointment confirmed",
        "push_body": "{{ appointment.when }}",
        "push_link": "{{ appointment.path|default:'/' }}",
    },
    "appointment_reminder": {
        "name": "Appointment reminder",
        "category": Category.APPOINTMENTS,
        "subject": "Reminder: your appointment {{ appointment.when }}",
        "text_body": "Hello {{ member.first_name }},\n\nA reminder of your appointment"
        "{% if appointment.officer %} with {{ appointment.officer }}{% endif %} "
        "{{ appointment.when }}." + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>A reminder of your appointment"
        "{% if appointment.officer %} with {{ appointment.officer }}{% endif %} "
        "<strong>{{ appointment.when }}</strong>.</p>",
        "push_title": "Appointment {{ appointment.when }}",
        "push_body": "{% if appointment.officer %}With {{ appointment.officer }}.{% endif %}",
        "push_link": "{{ appointment.path|default:'/' }}",
    },
    "appointment_update": {
        "name": "Appointment changed",
        "category": Category.APPOINTMENTS,
        "subject": "Changed: your appointment is now {{ appointment.when }}",
        "text_body": "Hello {{ member.first_name }},\n\nYour appointment is now "
        "{{ appointment.when }}. The updated invitation is attached." + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>Your appointment is now "
        "<strong>{{ appointment.when }}</strong>. The updated invitation is attached.</p>",
        "push_title": "Appointment changed",
        "push_body": "Now {{ appointment.when }}",
        "push_link": "{{ appointment.path|default:'/' }}",
    },
    "appointment_cancellation": {
        "name": "Appointment cancelled",
        "category": Category.APPOINTMENTS,
        "subject": "Cancelled: your appointment {{ appointment.when }}",
        "text_body": "Hello {{ member.first_name }},\n\nYour appointment {{ appointment.when }} "
        "is cancelled." + _SIGN,
        "html_body": "<p>Hello {{ member.first_name }},</p><p>Your appointment "
        "{{ appointment.when }} is cancelled.</p>",
        "push_title": "Appointment cancelled",
        "push_body": "{{ appointment.when }}",
        "push_link": "{{ appointment.path|default:'/' }}",
    },
    # To the loan officer (not a member): email only, in the institution's time zone.
    "appointment_officer_confirmation": {
        "name": "Appointment booked (to the loan officer)",
        "category": Category.APPOINTMENTS,
        "subject": "New appointment: {{ appointment.member_name }}, {{ appointment.when }}",
        "text_body": "Hello {{ recipient.name }},\n\n{{ appointment.member_name }} "
        "({{ appointment.member_email }}) booked a conversation with you for "
        "{{ appointment.when }}{% if appointment.offer %} about {{ appointment.offer }}"
        "{% endif %}.{% if appointment.note %}\n\nTheir note: {{ appointment.note }}{% endif %}"
        "\n\nThe invitation is attached. In the admin: {{ appointment.admin_url }}" + _SIGN,
        "html_body": "<p>Hello {{ recipient.name }},</p><p>{{ appointment.member_name }} "
        "({{ appointment.member_email }}) booked a conversation with you for <strong>"
        "{{ appointment.when }}</strong>{% if appointment.offer %} about "
        "{{ appointment.offer }}{% endif %}.</p>{% if appointment.note %}<p>Their note: "
        "{{ appointment.note }}</p>{% endif %}<p>The invitation is attached.</p>"
        '<p><a class="button" href="{{ appointment.admin_url }}">Open in the admin</a></p>',
    },
    "appointment_officer_update": {
        "name": "Appointment moved (to the loan officer)",
        "category": Category.APPOINTMENTS,
        "subject": "Moved: {{ appointment.member_name }} is now {{ appointment.when }}",
        "text_body": "Hello {{ recipient.name }},\n\n{{ appointment.member_name }} moved "
        "their conversation with you to {{ appointment.when }}. The updated invitation is "
        "attached.\n\nIn the admin: {{ appointment.admin_url }}" + _SIGN,
        "html_body": "<p>Hello {{ recipient.name }},</p><p>{{ appointment.member_name }} moved "
        "their conversation with you to <strong>{{ appointment.when }}</strong>. The updated "
        "invitation is attached.</p>"
        '<p><a class="button" href="{{ appointment.admin_url }}">Open in the admin</a></p>',
    },
    "appointment_officer_cancellation": {
        "name": "Appointment cancelled (to the loan officer)",
        "category": Category.APPOINTMENTS,
        "subject": "Cancelled: {{ appointment.member_name }}, {{ appointment.when }}",
        "text_body": "Hello {{ recipient.name }},\n\nThe conversation with "
        "{{ appointment.member_name }} on {{ appointment.when }} is cancelled." + _SIGN,
        "html_body": "<p>Hello {{ recipient.name }},</p><p>The conversation with "
        "{{ appointment.member_name }} on <strong>{{ appointment.when }}</strong> is "
        "cancelled.</p>",
    },
}
