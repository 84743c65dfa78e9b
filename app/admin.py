"""The one /admin router: every domain's staff routes, behind one role gate."""

from fastapi import APIRouter, Depends

from app.auth.deps import ADMIN_ROLE_REQUIRED, require_admin
from app.core.openapi import error_responses
from app.newsletters import admin as newsletters_admin
from app.services.email import preview as email_preview
from app.transactions import admin as transactions_admin
from app.users.admin import router as users_admin_router

router = APIRouter(
    prefix="/admin",
    dependencies=[Depends(require_admin)],
    responses=error_responses("UNAUTHORIZED", ADMIN_ROLE_REQUIRED.code),
)
router.include_router(users_admin_router)
router.include_router(email_preview.router)
router.include_router(newsletters_admin.router)
router.include_router(transactions_admin.router)
