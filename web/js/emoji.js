// The built-in emoji picker's set: common faces, hands and symbols. Kept
// small on purpose; typing any other emoji from the OS keyboard works too.
export const EMOJI = [
  '😀', '😁', '😂', '🤣', '😊', '😇', '🙂', '😉', '😍', '😘',
  '😋', '😜', '🤔', '🤗', '🤫', '😐', '😏', '😴', '😎', '🤓',
  '😮', '😲', '😢', '😭', '😡', '😱', '🥳', '🥺', '😅', '🙃',
  '👍', '👎', '👏', '🙏', '👌', '✌️', '💪', '👋', '🤝', '🙌',
  '❤️', '💔', '🔥', '✨', '🎉', '🎂', '🌹', '☕', '🍻', '💯',
];
