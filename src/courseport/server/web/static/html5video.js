/*
 * Tracking for the gcb-html5video tag (spec §7.1): every media event listed
 * below on the tag's <video> is reported as tag-html5video-event through
 * courseport.js's audit. The tag renders
 * <video id="<instanceid>" ...> followed by the script html5video.js and a
 * call gcbTagHtml5VideoTrack("<instanceid>").
 */
(function () {
  'use strict';

  if (window.gcbTagHtml5VideoTrack) {
    return;
  }

  var EVENTS = ['loadstart', 'loadeddata', 'abort', 'error', 'play', 'pause', 'playing',
    'waiting', 'seeked', 'ended', 'ratechange'];

  function audit(payload) {
    if (window.courseport && window.courseport.audit) {
      window.courseport.audit('tag-html5video-event', payload, false);
    }
  }

  window.gcbTagHtml5VideoTrack = function (instanceId) {
    var video = document.getElementById(instanceId);
    if (!video || video.courseportTracked) {
      return;
    }
    video.courseportTracked = true;
    var eventId = 0;
    EVENTS.forEach(function (type) {
      video.addEventListener(type, function () {
        audit({
          instance_id: instanceId,
          event_id: eventId,
          position: video.currentTime,
          rate: video.playbackRate,
          default_rate: video.defaultPlaybackRate,
          event_type: type
        });
        eventId += 1;
      });
    });
  };
}());
