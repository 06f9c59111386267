/*
 * Tracking YouTube players for the gcb-youtube tag (spec §5.3, §7.1).
 *
 * The tag renders a paragraph with id X holding the script youtube.js and a
 * call gcbTagYoutubeEnqueueVideo("<video id>", "X"). Each
 * call builds a 650x400 player inside that paragraph once YouTube's iframe
 * API has loaded, and reports tag-youtube-milestone (playback advanced more
 * than 30 s since the last one, polled every second) and tag-youtube-event
 * (player state 0 = ended, 1 = playing) through courseport.js's audit.
 * Players are numbered 0, 1, 2... in the order the page enqueues them.
 */
(function () {
  'use strict';

  if (window.gcbTagYoutubeEnqueueVideo) {
    return;
  }

  var API_URL = 'https://www.youtube.com/iframe_api';
  var MILESTONE_SECONDS = 30;
  var pending = [];
  var apiReady = false;
  var apiRequested = false;
  var nextInstance = 0;

  function audit(source, payload) {
    if (window.courseport && window.courseport.audit) {
      window.courseport.audit(source, payload, false);
    }
  }

  function Tracker(videoId, elementId, instanceId) {
    this.videoId = videoId;
    this.elementId = elementId;
    this.instanceId = instanceId;
    this.eventId = 0;
    this.lastMilestone = 0;
    this.player = null;
  }

  Tracker.prototype.position = function () {
    var player = this.player;
    if (!player || typeof player.getCurrentTime !== 'function') {
      return null;
    }
    var seconds = Number(player.getCurrentTime());
    return isNaN(seconds) ? null : seconds;
  };

  Tracker.prototype.payload = function (position) {
    var payload = {
      video_id: this.videoId,
      instance_id: this.instanceId,
      event_id: this.eventId,
      position: Math.round(position)
    };
    this.eventId += 1;
    return payload;
  };

  Tracker.prototype.poll = function () {
    var position = this.position();
    if (position !== null && position - this.lastMilestone > MILESTONE_SECONDS) {
      this.lastMilestone = position;
      audit('tag-youtube-milestone', this.payload(position));
    }
  };

  Tracker.prototype.onStateChange = function (event) {
    if (event.data !== 0 && event.data !== 1) {
      return;
    }
    var payload = this.payload(this.position() || 0);
    payload.data = event.data;
    audit('tag-youtube-event', payload);
  };

  Tracker.prototype.build = function () {
    var parent = document.getElementById(this.elementId);
    if (!parent) {
      return;
    }
    var target = document.createElement('div');
    target.id = this.elementId + '-child';
    parent.appendChild(target);
    var that = this;
    this.player = new window.YT.Player(target.id, {
      videoId: this.videoId,
      width: 650,
      height: 400,
      playerVars: {rel: 0},
      events: {
        onStateChange: function (event) {
          that.onStateChange(event);
        }
      }
    });
    window.setInterval(function () {
      that.poll();
    }, 1000);
  };

  function buildPending() {
    var queue = pending;
    pending = [];
    queue.forEach(function (tracker) {
      tracker.build();
    });
  }

  function loadApi() {
    if (apiRequested) {
      return;
    }
    apiRequested = true;
    var previous = window.onYouTubeIframeAPIReady;
    window.onYouTubeIframeAPIReady = function () {
      if (typeof previous === 'function') {
        previous();
      }
      apiReady = true;
      buildPending();
    };
    var script = document.createElement('script');
    script.src = API_URL;
    (document.head || document.documentElement).appendChild(script);
  }

  window.gcbTagYoutubeEnqueueVideo = function (videoId, elementId) {
    pending.push(new Tracker(videoId, elementId, nextInstance));
    nextInstance += 1;
    if (apiReady || (window.YT && window.YT.loaded && window.YT.Player)) {
      apiReady = true;
      buildPending();
    } else {
      loadApi();
    }
  };
}());
