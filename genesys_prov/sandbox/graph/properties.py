"""The Graph objects the emulator serves: the properties of users and groups that
``$select`` accepts, their default selections, collections, internal fields and OData
type names."""

from __future__ import annotations

USER_DEFAULT_SELECT = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)
#: Properties of microsoft.graph.user that $select accepts (v1.0).
USER_PROPERTIES = (
    "id", "aboutMe", "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans",
    "birthday", "businessPhones", "city", "companyName", "consentProvidedForMinor", "country",
    "createdDateTime", "creationType", "deletedDateTime", "department", "displayName",
    "employeeHireDate", "employeeLeaveDateTime", "employeeId", "employeeOrgData",
    "employeeType", "externalUserState", "externalUserStateChangeDateTime", "faxNumber",
    "givenName", "hireDate", "identities", "imAddresses", "interests", "isResourceAccount",
    "jobTitle", "lastPasswordChangeDateTime", "legalAgeGroupClassification", "mail",
    "mailNickname", "mobilePhone", "mySite", "officeLocation", "onPremisesDistinguishedName",
    "onPremisesDomainName", "onPremisesExtensionAttributes", "onPremisesImmutableId",
    "onPremisesLastSyncDateTime", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "otherMails", "passwordPolicies",
    "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage", "preferredName",
    "provisionedPlans", "proxyAddresses", "responsibilities", "schools",
    "securityIdentifier", "showInAddressList", "signInSessionsValidFromDateTime", "skills",
    "state", "streetAddress", "surname", "usageLocation", "userPrincipalName", "userType",
)
GROUP_DEFAULT_SELECT = (
    "id", "createdDateTime", "description", "displayName", "groupTypes", "mail", "mailEnabled",
    "mailNickname", "securityEnabled", "visibility",
)
GROUP_PROPERTIES = (
    *GROUP_DEFAULT_SELECT, "classification", "deletedDateTime", "expirationDateTime",
    "isAssignableToRole", "membershipRule", "membershipRuleProcessingState",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "preferredDataLocation",
    "preferredLanguage", "proxyAddresses", "renewedDateTime", "securityIdentifier", "theme",
)
COLLECTIONS = frozenset(
    {"businessPhones", "otherMails", "proxyAddresses", "identities", "imAddresses",
     "assignedLicenses", "assignedPlans", "provisionedPlans", "interests", "pastProjects",
     "responsibilities", "schools", "skills", "groupTypes"}
)
USER_LOOKUP = {name.lower(): name for name in USER_PROPERTIES}
GROUP_LOOKUP = {name.lower(): name for name in GROUP_PROPERTIES}
INTERNAL = frozenset({"manager", "members"})
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
