// The signed-in user, shared by the views.
export const session = {
  user: null,        // {name, role, regions}
  hubId: '',
};

export function isSupervisor() {
  const role = session.user && session.user.role;
  return role === 'supervisor' || role === 'admin';
}

export function userRegions() {
  return (session.user && Array.isArray(session.user.regions)) ? session.user.regions : [];
}
