"""Sample data for every email template: the staff preview renders with it, and a test
renders every template in every locale with it (a template without a sample, or a sample
missing a variable, fails that test)."""

from typing import Any

from markupsafe import Markup

SAMPLES: dict[str, dict[str, Any]] = {
    "confirmation_code": {"name": "Анна", "code": "482915", "ttl_minutes": 10},
    "password_reset": {
        "name": "Анна",
        "reset_url": "http://localhost:8000/reset-password?token=sample-token",
        "ttl_minutes": 30,
    },
    "password_changed": {"name": "Анна", "changed_at": "27.11.2026 14:05 UTC"},
    "email_changed": {
        "name": "Анна",
        "new_email_masked": "a***@example.com",
        "changed_at": "27.11.2026 14:05 UTC",
    },
    "order_status": {
        "name": "Анна",
        "order_number": "7D7F3F4E",
        "status": "in_delivery",
        "status_label": "В доставке",
        "amount": "2\u00a0499,00\u00a0RUB",
        "description": "Кофемолка ручная, 1 шт.",
    },
    # Staff content arrives rendered by the sandbox (app.services.email.bulk).
    "newsletter": {
        "newsletter_subject": "Скидки недели",
        "newsletter_html": Markup("<h1>Скидки недели</h1><p>Анна, для вас −20% на всё.</p>"),
        "newsletter_text": "Анна, для вас −20% на всё.",
        "unsubscribe_url": "http://localhost:8000/unsubscribe/sample",
    },
    "newsletter_test": {
        "newsletter_subject": "Скидки недели",
        "newsletter_html": Markup("<h1>Скидки недели</h1><p>Анна, для вас −20% на всё.</p>"),
        "newsletter_text": "Анна, для вас −20% на всё.",
        "unsubscribe_url": "http://localhost:8000/unsubscribe/sample",
    },
}
