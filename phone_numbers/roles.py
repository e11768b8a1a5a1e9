"""The portal's two roles, as Django groups (PRODUCT.md, "Who uses it")."""

SUPPORT = "Support"
ADMINS = "Admins"
