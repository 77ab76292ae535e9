"""Sales documents: auto-create sales orders and process quotes from the CRM, order status
posts, notes both ways, customer statistics and invoice status, the item availability
push, and the SALESORDER-ORDER / POSTEDSALESINV-INV hooks of the mapping sync."""
