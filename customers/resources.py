"""CSV import of customers: every row is validated like the admin form; one bad row rejects the file."""

from import_export import resources
from import_export.results import RowResult

from customers.models import Customer


class CustomerResource(resources.ModelResource):
    class Meta:
        model = Customer
        fields = (
            "account_number", "first_name", "last_name", "phone", "email", "company", "plan", "balance",
            "status", "date_of_birth", "postcode", "notes",
        )
        # No id column: every row is a new customer, so an existing account number is a
        # duplicate error (full_clean's unique check), not a silent update.
        import_id_fields = ()
        clean_model_instances = True
        skip_diff = False
        use_transactions = True

    def get_instance(self, instance_loader, row):
        return None

    def import_row(self, row, instance_loader, **kwargs) -> RowResult:
        # Empty cells would otherwise bypass the model default and store "".
        if not (row.get("account_number") or "").strip():
            row.pop("account_number", None)
        return super().import_row(row, instance_loader, **kwargs)
