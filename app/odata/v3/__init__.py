"""The OData V3 compatibility path (``/ODataV3/``): BC's URL form for Dynamics 365 Sales."""
