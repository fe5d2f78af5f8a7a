// The details panel beside a chat: the peer's profile for a direct chat;
// name, members, roles and management actions for a group. Every action
// is checked by the server too; the buttons shown here follow the roles
// only so that users are not offered what would be refused.

import { api } from '../api.js';
import { h, mount } from '../dom.js';
import { t } from '../i18n.js';
import { store } from '../store.js';
import { icon } from './icons.js';
import {
  avatar, confirmDialog, conversationAvatar, conversationTitle, errorText, openModal, presenceLabel, toast,
} from './common.js';

/** What PUT …/avatar takes (§4.10); the picker offers only these. */
export const AVATAR_TYPES = 'image/png,image/jpeg,image/gif,image/webp';

const ROLE_RANK = { member: 0, admin: 1, owner: 2 };

export class InfoPanel {
  constructor(conversationId, { onClose, onOpenChat }) {
    this.id = conversationId;
    this.onOpenChat = onOpenChat;
    this.body = h('div', { class: 'info-body' });
    this.members = h('ul', { class: 'member-list', testid: 'member-list' });
    this.el = h('div', { class: 'info' },
      h('div', { class: 'info-header' },
        h('h3', {}, t('chat.details')),
        h('button', { type: 'button', class: 'icon-btn', testid: 'info-close', 'aria-label': t('close'), onClick: onClose }, icon('close', 18))),
      this.body);
    this.build();
  }

  destroy() {
    this.el.remove();
  }

  update(topics) {
    if (['members', 'friends', 'presence', 'conversations', 'users', 'blocks', 'all'].some((x) => topics.has(x))) {
      if (store.conversation(this.id)?.summary.kind === 'group') this.renderGroupDynamic();
      else this.build();
    }
  }

  build() {
    const conv = store.conversation(this.id);
    if (!conv) return;
    if (conv.summary.kind === 'direct') this.buildDirect(conv);
    else this.buildGroup(conv);
  }

  buildDirect(conv) {
    const peer = conv.summary.peer;
    if (!peer) return;
    const presence = store.presence(peer.id);
    const isFriend = store.friends.has(peer.id);
    mount(this.body,
      h('div', { class: 'profile-card' },
        avatar(peer, 'lg'),
        h('div', { class: 'profile-name' }, peer.nickname),
        h('div', { class: 'muted' }, `@${peer.username}`),
        presenceLabel(presence),
        peer.signature ? h('p', { class: 'signature' }, peer.signature) : null),
      h('div', { class: 'info-actions' },
        isFriend ? h('button', {
          type: 'button', class: 'btn', testid: 'remove-friend',
          onClick: () => removeFriend(peer),
        }, t('contacts.remove')) : null,
        blockButton(peer)));
  }

  buildGroup(conv) {
    const s = conv.summary;
    this.nameInput = h('input', { testid: 'group-rename-input', maxlength: '64', value: s.name ?? '' });
    this.renameForm = h('form', {
      class: 'inline-form', testid: 'group-rename-form',
      onSubmit: async (e) => {
        e.preventDefault();
        const name = this.nameInput.value.trim();
        if (!name) return;
        try {
          await api.renameGroup(this.id, name);
          // The `renamed` notice updates everyone; update ours now.
          const current = store.conversation(this.id);
          if (current) current.summary.name = name;
          store.emit('conversations');
          toast(t('group.renamed'));
        } catch (err) {
          toast(errorText(err), 'error');
        }
      },
    }, this.nameInput, h('button', { type: 'submit', class: 'btn', testid: 'group-rename-save' }, t('save')));
    this.groupTitle = h('div', { class: 'profile-name', testid: 'group-name' });
    this.groupAvatar = h('span', { class: 'group-avatar', testid: 'group-avatar' });
    const avatarInput = h('input', {
      type: 'file', accept: AVATAR_TYPES, hidden: true, testid: 'group-avatar-input',
      onChange: () => {
        const file = avatarInput.files[0];
        avatarInput.value = '';
        if (file) this.setGroupAvatar(file);
      },
    });
    this.avatarStatus = h('span', { class: 'muted small', testid: 'group-avatar-status', 'aria-live': 'polite' });
    this.avatarControls = h('div', { class: 'avatar-controls' },
      h('button', {
        type: 'button', class: 'link', testid: 'group-avatar-change', onClick: () => avatarInput.click(),
      }, t('group.changeAvatar')),
      avatarInput, this.avatarStatus);
    this.actions = h('div', { class: 'info-actions' });
    this.memberHeading = h('h4', {});
    mount(this.body,
      h('div', { class: 'profile-card' }, this.groupAvatar, this.groupTitle, this.avatarControls),
      this.renameForm,
      h('div', { class: 'section-header' }, this.memberHeading,
        h('button', { type: 'button', class: 'link', testid: 'add-members', onClick: () => this.addMembersDialog() }, t('group.addMembers'))),
      this.members,
      this.actions);
    this.renderGroupDynamic();
  }

  renderGroupDynamic() {
    const conv = store.conversation(this.id);
    if (!conv || !this.groupTitle) return;
    const s = conv.summary;
    const myRole = s.my_role;
    const iAmAdmin = ROLE_RANK[myRole] >= ROLE_RANK.admin;
    this.groupTitle.textContent = conversationTitle(conv);
    mount(this.groupAvatar, conversationAvatar(conv, 'lg'));
    this.avatarControls.hidden = !iAmAdmin;
    if (document.activeElement !== this.nameInput) this.nameInput.value = s.name ?? '';
    this.renameForm.hidden = !iAmAdmin;
    this.memberHeading.textContent = t('group.membersCount', { n: s.member_count });
    const members = [...(conv.members ?? [])].sort((a, b) =>
      ROLE_RANK[b.role] - ROLE_RANK[a.role] || a.joined_at_ms - b.joined_at_ms);
    mount(this.members, members.map((m) => {
      const me = m.user.id === store.me?.id;
      const outranks = ROLE_RANK[myRole] > ROLE_RANK[m.role];
      return h('li', { class: 'member-row', testid: 'member-row', dataset: { userId: String(m.user.id), role: m.role } },
        avatar(m.user, 'sm'),
        h('span', { class: 'member-name', testid: 'member-name' }, m.user.nickname, me ? ` (${t('you')})` : ''),
        m.role !== 'member' ? h('span', { class: `role-badge role-${m.role}`, testid: 'member-role' }, t(`role.${m.role}`)) : null,
        h('span', { class: 'member-actions' },
          myRole === 'owner' && !me ? h('button', {
            type: 'button', class: 'link', testid: 'toggle-admin',
            onClick: () => this.run(() => api.setRole(this.id, m.user.id, m.role === 'admin' ? 'member' : 'admin')),
          }, m.role === 'admin' ? t('group.revokeAdmin') : t('group.makeAdmin')) : null,
          myRole === 'owner' && !me ? h('button', {
            type: 'button', class: 'link', testid: 'transfer-owner',
            onClick: async () => {
              if (await confirmDialog(t('group.transferConfirm', { name: m.user.nickname }), t('group.transfer'))) {
                this.run(() => api.transferOwnership(this.id, m.user.id));
              }
            },
          }, t('group.transfer')) : null,
          iAmAdmin && outranks && !me ? h('button', {
            type: 'button', class: 'link danger', testid: 'remove-member',
            onClick: async () => {
              if (await confirmDialog(t('group.removeConfirm', { name: m.user.nickname }), t('group.remove'), { danger: true })) {
                this.run(() => api.removeMember(this.id, m.user.id));
              }
            },
          }, t('group.remove')) : null));
    }));
    mount(this.actions,
      // The owner cannot leave: ownership must be transferred (or the group disbanded) first.
      myRole === 'owner' ? null : h('button', {
        type: 'button', class: 'btn', testid: 'leave-group',
        onClick: async () => {
          if (!(await confirmDialog(t('group.leaveConfirm'), t('group.leave'), { danger: true }))) return;
          try {
            await api.leaveGroup(this.id);
            store.removeConversation(this.id);
          } catch (err) {
            toast(err.code === 'forbidden' || err.code === 'conflict' ? t('group.ownerCannotLeave') : errorText(err), 'error');
          }
        },
      }, t('group.leave')),
      myRole === 'owner' ? h('button', {
        type: 'button', class: 'btn btn-danger', testid: 'disband-group',
        onClick: async () => {
          if (!(await confirmDialog(t('group.disbandConfirm'), t('group.disband'), { danger: true }))) return;
          try {
            await api.disbandGroup(this.id);
            store.removeConversation(this.id);
          } catch (err) {
            toast(errorText(err), 'error');
          }
        },
      }, t('group.disband')) : null);
  }

  /** Uploads the group's picture; everyone (us too) takes it from the `avatar_changed` notice. */
  async setGroupAvatar(file) {
    this.avatarStatus.textContent = t('settings.avatarUploading');
    try {
      await api.setGroupAvatar(this.id, file);
      this.avatarStatus.textContent = '';
      toast(t('group.avatarChanged'));
    } catch (err) {
      this.avatarStatus.textContent = '';
      toast(errorText(`avatar.${err.code}`), 'error');
    }
  }

  /** Runs a membership change; the member list refreshes from the notice it produces. */
  async run(action) {
    try {
      await action();
      const conv = store.conversation(this.id);
      if (conv) {
        conv.membersStale = true;
        store.emit('members');
      }
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async addMembersDialog() {
    const conv = store.conversation(this.id);
    if (!conv) return;
    const inGroup = new Set((conv.members ?? []).map((m) => m.user.id));
    const candidates = store.sortedFriends().filter((f) => !inGroup.has(f.user.id));
    const checks = candidates.map((f) => {
      const box = h('input', { type: 'checkbox', value: String(f.user.id), testid: 'add-member-checkbox' });
      return { box, row: h('label', { class: 'check-row', testid: 'add-member-option' }, box, ' ', f.user.nickname, h('span', { class: 'muted' }, ` @${f.user.username}`)) };
    });
    await openModal({
      title: t('group.addMembers'),
      testid: 'add-members-dialog',
      content: candidates.length
        ? h('div', { class: 'check-list' }, checks.map((c) => c.row))
        : h('p', { class: 'muted' }, t('group.noMoreFriends')),
      actions: [
        { label: t('cancel'), testid: 'add-members-cancel' },
        {
          label: t('group.add'), kind: 'primary', testid: 'add-members-submit',
          run: async () => {
            const ids = checks.filter((c) => c.box.checked).map((c) => Number(c.box.value));
            if (ids.length === 0) return true;
            try {
              await api.addMembers(this.id, ids);
              const current = store.conversation(this.id);
              if (current) current.membersStale = true;
              store.emit('members');
              return true;
            } catch (err) {
              toast(errorText(err), 'error');
              return false;
            }
          },
        },
      ],
    });
  }
}

export async function removeFriend(profile) {
  if (!(await confirmDialog(t('contacts.removeConfirm', { name: profile.nickname }), t('contacts.remove'), { danger: true }))) return false;
  try {
    await api.removeFriend(profile.id);
    store.friendRemoved(profile.id);
    return true;
  } catch (err) {
    toast(errorText(err), 'error');
    return false;
  }
}

/**
 * Block or unblock. A block keeps the friendship (unblocking restores things
 * as they were); it only stops messages and requests while it lasts.
 */
export function blockButton(profile) {
  if (store.isBlocked(profile.id)) {
    return h('button', {
      type: 'button', class: 'btn', testid: 'unblock-user',
      onClick: () => unblockUser(profile),
    }, t('contacts.unblock'));
  }
  return h('button', {
    type: 'button', class: 'btn btn-danger', testid: 'block-user',
    onClick: () => blockUser(profile),
  }, t('contacts.block'));
}

export async function blockUser(profile) {
  if (!(await confirmDialog(t('contacts.blockConfirm', { name: profile.nickname }), t('contacts.block'), { danger: true }))) return false;
  try {
    await api.block(profile.id);
    store.setBlocks([...store.blocks.filter((b) => b.id !== profile.id), profile]);
    toast(t('contacts.blocked', { name: profile.nickname }));
    return true;
  } catch (err) {
    toast(errorText(err), 'error');
    return false;
  }
}

export async function unblockUser(profile) {
  try {
    await api.unblock(profile.id);
    store.setBlocks(store.blocks.filter((b) => b.id !== profile.id));
    return true;
  } catch (err) {
    toast(errorText(err), 'error');
    return false;
  }
}
